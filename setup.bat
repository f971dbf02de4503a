@echo off
REM Windows: crea el entorno virtual, instala las dependencias y entrena los modelos.
REM Pruebas despues: .venv\Scripts\python -m pytest mlops_pipeline
setlocal
cd /d "%~dp0"
if not exist .venv (
    py -3.11 -m venv .venv || python -m venv .venv || goto :error
)
call .venv\Scripts\activate.bat || goto :error
python -m pip install --upgrade pip || goto :error
pip install -r requirements.txt || goto :error
python mlops_pipeline\src\model_training_evaluation.py %* || goto :error
echo.
echo Listo. Para servir el modelo: python mlops_pipeline\src\model_deploy.py serve
exit /b 0
:error
echo Fallo la instalacion o el entrenamiento (codigo %errorlevel%).
exit /b %errorlevel%
